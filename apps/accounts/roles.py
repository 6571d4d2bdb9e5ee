"""Roles are groups, ranked: each role can do everything the roles below it can."""

from django.db import models


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    ENGINEER = "engineer", "Engineer"
    REVIEWER = "reviewer", "Reviewer"
    ADMIN = "admin", "Admin"


RANK = {Role.VIEWER: 0, Role.ENGINEER: 1, Role.REVIEWER: 2, Role.ADMIN: 3}
