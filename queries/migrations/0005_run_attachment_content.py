"""Run attachments move from files in MEDIA_ROOT into the database, so that a worker
on another machine can send them with no shared disk.

Each existing file is copied into the new ``content`` column. A run still waiting to be
sent whose file is gone is failed with a reason, rather than sent without its file. The
old files are left where they were (a failed migration must not have deleted them);
once migrated, MEDIA_ROOT/workspaces/<id>/runs/ can be removed.
"""

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import migrations, models

MISSING = (
    "An attachment of this run ({name}) was missing from the file storage when attachments "
    "moved into the database; the run was not sent."
)


def copy_files_into_rows(apps, schema_editor):
    RunAttachment = apps.get_model("queries", "RunAttachment")
    QueryRun = apps.get_model("queries", "QueryRun")
    for attachment in RunAttachment.objects.exclude(file="").iterator(chunk_size=50):
        try:
            with default_storage.open(attachment.file.name, "rb") as f:
                content = f.read()
        except OSError:
            QueryRun.objects.filter(
                pk=attachment.run_id, status__in=["queued", "scheduled"]
            ).update(status="failed", error=MISSING.format(name=attachment.name))
            continue
        RunAttachment.objects.filter(pk=attachment.pk).update(content=content)


def write_rows_to_files(apps, schema_editor):
    RunAttachment = apps.get_model("queries", "RunAttachment")
    for attachment in RunAttachment.objects.iterator(chunk_size=50):
        run = attachment.run
        path = f"workspaces/{run.workspace_id}/runs/{run.pk}/{attachment.position}-{attachment.name}"
        saved = default_storage.save(path, ContentFile(bytes(attachment.content)))
        RunAttachment.objects.filter(pk=attachment.pk).update(file=saved)


class Migration(migrations.Migration):
    dependencies = [
        ("queries", "0004_json_keeps_key_order"),
    ]

    operations = [
        migrations.AddField(
            model_name="runattachment",
            name="content",
            field=models.BinaryField(default=b""),
            preserve_default=False,
        ),
        migrations.RunPython(copy_files_into_rows, write_rows_to_files),
        migrations.RemoveField(model_name="runattachment", name="file"),
    ]
