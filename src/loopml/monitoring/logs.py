"""Reading the model server's prediction log: predictions and feedback of a model over a
time range, as one pyarrow Table, and the two joined on the request id.

The format and the readers live in :mod:`loopml.storage.prediction_segments`, beside the
stores, so that the model server writing the log does not import monitoring; they are
re-exported here for monitoring's users.
"""

from loopml.storage.prediction_segments import (
    BASE_SCHEMA,
    DEFAULT_LABEL,
    FEEDBACK_TIMESTAMP,
    FORMAT_VERSION,
    INPUT_PREFIX,
    LABEL_PREFIX,
    OUTPUT_PREFIX,
    concat_tables,
    join_feedback,
    read_feedback,
    read_predictions,
    read_segments,
)

__all__ = [
    "BASE_SCHEMA",
    "DEFAULT_LABEL",
    "FEEDBACK_TIMESTAMP",
    "FORMAT_VERSION",
    "INPUT_PREFIX",
    "LABEL_PREFIX",
    "OUTPUT_PREFIX",
    "concat_tables",
    "join_feedback",
    "read_feedback",
    "read_predictions",
    "read_segments",
]
