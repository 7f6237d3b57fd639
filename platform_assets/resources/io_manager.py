"""The production profile's IO manager: no step hands a value to another.

Every asset of the platform writes its own store (the warehouse, the shared store, MLflow, Feast) and returns a
`MaterializeResult` or None; downstream assets declare `deps`, never an input parameter. So nothing needs
Dagster's default IO manager, which pickles every output into `PLATFORM_DAGSTER_STORAGE` and would make that
folder one every Celery worker must mount. This one keeps nothing: a None output is what every step returns, a
value is dropped with a warning (it is not passed on), and loading an input fails, naming why. The test
`tests/unit/test_io_manager.py` checks that no asset or op of the Definitions takes a value input.
"""

import dagster as dg


class NoValuesIOManager(dg.ConfigurableIOManager):
    """Stores no output; see the module."""

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        if obj is not None:
            context.log.warning(
                f"{context.step_key} returned a {type(obj).__name__}: the production profile passes no values between "
                "steps (resources/io_manager.py), so it is not stored; write it to a store and return a "
                "MaterializeResult")

    def load_input(self, context: dg.InputContext):
        raise dg.Failure(
            f"{context.name}: the production profile passes no values between steps (resources/io_manager.py); "
            "read the upstream asset from the store it wrote, and declare it in `deps`")
