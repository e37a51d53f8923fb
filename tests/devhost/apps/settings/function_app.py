"""An app configured by host.json (route prefix, hub name from %VAR%) and local.settings.json."""
import azure.functions as func

from greetings import bp

app = func.FunctionApp(http_auth_level=func.AuthLevel.ADMIN)
app.register_functions(bp)
