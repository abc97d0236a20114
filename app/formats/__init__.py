"""Pure readers and writers of the dialogue file formats (no database, no HTTP).

Read with :class:`DialogueReader` (format detected or named), get :class:`Dialogue` objects or
located :class:`RecordError` lists, write back with the per-format ``write`` functions.
"""

from app.formats.errors import ErrorCode, FormatError, RecordError
from app.formats.model import Dialogue, JsonValue, SourceAnnotation, Speaker, Turn
from app.formats.reader import FORMATS, DialogueReader, ReadOptions, read_dialogues
from app.formats.vocab import PSY_INSIGHT_CODEBOOK, default_vocabulary

__all__ = [
    "FORMATS",
    "PSY_INSIGHT_CODEBOOK",
    "Dialogue",
    "DialogueReader",
    "ErrorCode",
    "FormatError",
    "JsonValue",
    "ReadOptions",
    "RecordError",
    "SourceAnnotation",
    "Speaker",
    "Turn",
    "default_vocabulary",
    "read_dialogues",
]
