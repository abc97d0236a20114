"""The ORM tables, one shared package."""

from app.models.agreement import AgreementResult
from app.models.annotation import Annotation, AnnotationChange, Assignment, TurnNote
from app.models.audit import AuditEvent
from app.models.base import Base
from app.models.codebook import CodebookDimension, CodebookLabel, CodebookVersion
from app.models.dialogue import (
    AnnotationSource,
    Dialogue,
    ImportBatch,
    ImportChunk,
    SourceAnnotation,
    Turn,
)
from app.models.project import Project, ProjectMembership, Role
from app.models.user import ApiToken, Invitation, LoginAttempt, User, UserSession

__all__ = [
    "AgreementResult",
    "Annotation",
    "AnnotationChange",
    "AnnotationSource",
    "ApiToken",
    "Assignment",
    "AuditEvent",
    "Base",
    "CodebookDimension",
    "CodebookLabel",
    "CodebookVersion",
    "Dialogue",
    "ImportBatch",
    "ImportChunk",
    "Invitation",
    "LoginAttempt",
    "Project",
    "ProjectMembership",
    "Role",
    "SourceAnnotation",
    "Turn",
    "TurnNote",
    "User",
    "UserSession",
]
