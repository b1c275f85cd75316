from django.apps import AppConfig


class PositionsConfig(AppConfig):
    name = "positions"
    verbose_name = "Positions"

    def ready(self):
        from odum_live.live import register_live_topic
        from positions import views

        register_live_topic("positions", groups=views.live_groups, render=views.live_render)
