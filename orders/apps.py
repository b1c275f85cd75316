from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self):
        # The order pages' live topics on /ws/live/ (odum_live/live.py).
        from orders.web.live import register

        register()
        from odum_live.live import register_live_topic
        from orders import views_logs

        register_live_topic("logs", groups=views_logs.live_groups, render=views_logs.live_render, takes_argument=True)
        # Open WebSocket connections re-check a user's access when it changes (orders/services/access.py).
        from orders.services.access import connect_access_receivers

        connect_access_receivers()
