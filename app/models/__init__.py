"""The ORM tables, one shared package."""

from app.models.audit import AuditEvent
from app.models.base import Base
from app.models.project import Project, ProjectMembership, Role
from app.models.user import ApiToken, Invitation, LoginAttempt, User, UserSession

__all__ = [
    "ApiToken",
    "AuditEvent",
    "Base",
    "Invitation",
    "LoginAttempt",
    "Project",
    "ProjectMembership",
    "Role",
    "User",
    "UserSession",
]
