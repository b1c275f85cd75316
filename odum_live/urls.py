"""URL routes: admin, the order API under /api/, API schema and docs, login and the traders' pages."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.negotiation import DefaultContentNegotiation

from odum_live.views_status import status_page
from risk.views import kill_switch_set

urlpatterns = [
    path("admin/", admin.site.urls),
    # The schema and its UI render YAML / HTML, errors included: DRF's negotiation (an unserved ?format= a 404)
    # instead of the API's (a JSON-style 400, orders.api.negotiation).
    path("api/schema/", SpectacularAPIView.as_view(content_negotiation_class=DefaultContentNegotiation),
         name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema",
                                                     content_negotiation_class=DefaultContentNegotiation),
         name="api-docs"),
    path("api/", include("orders.api.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # The traders' pages (login required): orders.web_urls (execute, orders); other apps add theirs.
    path("live/", include("orders.web_urls")),
    path("live/", include("positions.web_urls")),
    path("live/", include("orders.web_urls_logs")),  # /live/logs
    path("status", status_page, name="status"),
    path("risk/kill-switch", kill_switch_set, name="risk-kill-switch"),
    path("", RedirectView.as_view(pattern_name="live-execute", permanent=False), name="home"),
    # Pages linking no icon (the admin, the API docs) make the browser ask here: the one in static/.
    path("favicon.ico", RedirectView.as_view(url=static("favicon.ico"), permanent=False), name="favicon"),
    path("", include("django_prometheus.urls")),  # GET /metrics (Prometheus text format)
]

if settings.ODUM["BENCH_ENDPOINTS"]:
    from odum_live.bench_views import BenchFloorView

    urlpatterns.insert(0, path("api/bench/floor", BenchFloorView.as_view(), name="bench-floor"))
