"""Every normalized table of the write side, imported in one place for Alembic."""

from command_api.idempotency import IdempotencyKey
from command_api.modules.auth.models import ApiToken, RefreshToken
from command_api.modules.notifications.models import Notification, NotificationRun
from command_api.modules.organizations.models import Membership, Organization, Team, TeamMember
from command_api.modules.projects.models import Client, Project, ProjectMember, Tag, Task
from command_api.modules.shared_reports.models import SharedReport
from command_api.modules.time_entries.models import TimeEntry, TimeEntryTag
from command_api.modules.users.models import NotificationSetting, User
from command_api.modules.webhooks.models import Webhook
from shared.changes import Change

__all__ = [
    "ApiToken",
    "Change",
    "Client",
    "IdempotencyKey",
    "Membership",
    "Notification",
    "NotificationRun",
    "NotificationSetting",
    "Organization",
    "Project",
    "ProjectMember",
    "RefreshToken",
    "SharedReport",
    "Tag",
    "Task",
    "Team",
    "TeamMember",
    "TimeEntry",
    "TimeEntryTag",
    "User",
    "Webhook",
]
