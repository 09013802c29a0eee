from django.conf import settings


def kiln(request):
    return {"devmailbox_enabled": settings.KILN_DEVMAILBOX}
