"""The one slug helper: a slug for a name, free among a model's rows."""

from __future__ import annotations

from django.db import models
from django.utils.text import slugify


def free_slug(model: type[models.Model], name: str, **scope) -> str:
    """``name`` as a slug that no row of ``model`` in ``scope`` has yet (``-2``, ``-3``...)."""
    base = slugify(name)[:90] or model.__name__.lower()
    slug, n = base, 1
    while model._default_manager.filter(slug=slug, **scope).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug
