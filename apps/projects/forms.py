from django import forms

from .models import Project


class ProjectForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = ["name", "slug", "repository_url"]
        help_texts = {"slug": "Short name used in URLs and the API, e.g. billing."}
