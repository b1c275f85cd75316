from django.apps import AppConfig


class OdumLiveConfig(AppConfig):
    name = "odum_live"
    verbose_name = "odum-live"
