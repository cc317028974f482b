import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "salesmgmt.settings")
application = get_wsgi_application()

from salesmgmt.startup import refuse_insecure_start  # noqa: E402 (settings are loaded by now)

refuse_insecure_start()
