"""The ground floor several stages read: cross-stage names, the training-set read contract, the champion,
exports, predictions, partitions, the landing-zone layout, charts. No stage imports another; they all import
from here, `resources/` and `settings.py`."""
