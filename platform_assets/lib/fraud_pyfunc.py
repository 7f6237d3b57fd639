"""The registered model's pyfunc: fraud probabilities, not class labels.

MLflow's xgboost flavour serves `XGBClassifier.predict`, i.e. 0/1 labels, so `mlflow models serve` on it answered
`{"predictions": [0, 0, 0]}`. Training logs this file as a model from code (MLflow 3): MLflow copies it into the
model version, so the version is self-contained (it imports only MLflow, XGBoost and pandas, never this
platform) and every pyfunc client, `mlflow models serve` included, gets P(fraud) per row. The native XGBoost
model is the version's `xgboost_model` artifact; the platform itself loads it as an `XGBClassifier`
(`MlflowResource.load_version`).
"""

import mlflow
from mlflow.pyfunc import PythonModel

XGBOOST_ARTIFACT = "xgboost_model"


class FraudProbability(PythonModel):
    """P(fraud) of each row, from the columns the model was trained on (in its own order, as float64)."""

    def load_context(self, context):
        import xgboost as xgb

        self.classifier = xgb.XGBClassifier()
        self.classifier.load_model(context.artifacts[XGBOOST_ARTIFACT])
        self.features = list(self.classifier.get_booster().feature_names or [])

    def predict(self, context, model_input, params=None):
        frame = model_input[self.features] if self.features else model_input
        return self.classifier.predict_proba(frame.astype("float64"))[:, 1]


mlflow.models.set_model(FraudProbability())
