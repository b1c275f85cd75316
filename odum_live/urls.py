"""URL routes: admin, the order API under /api/, API schema and docs."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include("orders.api.urls")),
    path("", include("django_prometheus.urls")),  # GET /metrics (Prometheus text format)
]

if settings.ODUM["BENCH_ENDPOINTS"]:
    from odum_live.bench_views import BenchFloorView

    urlpatterns.insert(0, path("api/bench/floor", BenchFloorView.as_view(), name="bench-floor"))
