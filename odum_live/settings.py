"""Django settings for odum-live, read from the environment (django-environ).

With no environment set the service runs on its *embedded default*: SQLite, the in-memory
channel layer, local-memory cache and eagerly executed Celery tasks. Setting ``DATABASE_URL``
and ``REDIS_URL`` switches to the production transports (PostgreSQL, channels_redis, Redis cache
and Celery over Redis); ``DATABASE_URL`` with DEBUG off and no ``REDIS_URL`` is refused unless
``ODUM_EMBEDDED_TRANSPORTS=1`` asks for the embedded transports. Every variable is listed in README.md
("Configuration").
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DATABASE_URL = env.str("DATABASE_URL", default="")
REDIS_URL = env.str("REDIS_URL", default="")
# "Production transports" are chosen by the presence of DATABASE_URL; DEBUG defaults off there.
DEBUG = env.bool("DJANGO_DEBUG", default=not DATABASE_URL)

_DEV_SECRET_KEY = "django-insecure-odum-live-development-only-key-0123456789abcdefghij"
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off (production settings)."
        )
    SECRET_KEY = _DEV_SECRET_KEY

# Production (DATABASE_URL, DEBUG off) without REDIS_URL would otherwise fall back, silently, to the
# embedded transports: an in-memory channel layer per process, Celery run eagerly and a TradingNode
# inside every web process. Only an explicit choice may run that way.
EMBEDDED_TRANSPORTS = env.bool("ODUM_EMBEDDED_TRANSPORTS", default=False)
if DATABASE_URL and not REDIS_URL and not DEBUG and not EMBEDDED_TRANSPORTS:
    raise ImproperlyConfigured(
        "REDIS_URL must be set with DATABASE_URL when DJANGO_DEBUG is off (production settings): it is the "
        "cache, the channel layer (live pages, WebSocket), the Celery broker carrying orders to the trading "
        "worker and the market-data store. Without it each process would run the embedded transports "
        "(in-memory channel layer, eager Celery, a TradingNode in every web process). Set REDIS_URL, or "
        "ODUM_EMBEDDED_TRANSPORTS=1 if one process on the embedded transports is really intended."
    )

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
CSRF_FAILURE_VIEW = "odum_live.views_errors.csrf_failure"  # the reason in the page's own 403, htmx too
# Flash messages live in the server-side session, never in a cookie: the admin shows a new API token once
# as a message (knox's AuthTokenAdmin), and Django's default storage would carry it in the browser's cookie.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "django_htmx",
    "channels",
    "django_prometheus",
    "odum_live",
    "venues",
    "positions",
    "risk",
    "routing",
    "orders",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "orders.api.middleware.ApiNotFoundMiddleware",  # JSON 404 for unknown /api/ paths, inside APPEND_SLASH
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "odum_live.middleware.HtmxLoginRedirectMiddleware",  # an htmx request without a session: login as a page
    "odum_live.middleware.HtmxNotFoundMiddleware",  # an htmx request's 404: the reason alone, DEBUG or not
    "simple_history.middleware.HistoryRequestMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "odum_live.urls"
WSGI_APPLICATION = "odum_live.wsgi.application"
ASGI_APPLICATION = "odum_live.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
if DATABASE_URL:
    DATABASES = {"default": env.db_url_config(DATABASE_URL)}
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    # Off by default: the check is one more round trip (SELECT 1) at the start of every request. Without
    # it, the first request on a connection the database dropped fails (500, nothing written; an
    # idempotent client retries with its operation_id) and Django discards that connection.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("DB_CONN_HEALTH_CHECKS", default=False)
    if DATABASES["default"]["ENGINE"].endswith("postgresql"):
        # psycopg 3 server-side binding, and server-side prepared statements: a statement run
        # DB_PREPARE_THRESHOLD times on a connection is prepared, so PostgreSQL parses and plans
        # the order-submission hot path's statements once per connection, not once per request.
        # Django turns preparing off unless OPTIONS names a threshold (it breaks transaction-mode
        # poolers such as PgBouncer < 1.21: set DB_PREPARE_THRESHOLD= (empty) behind one).
        options = DATABASES["default"].setdefault("OPTIONS", {})
        options["server_side_binding"] = env.bool("DB_SERVER_SIDE_BINDING", default=True)
        threshold = env.str("DB_PREPARE_THRESHOLD", default="5").strip()
        if threshold and not threshold.isdigit():
            raise ImproperlyConfigured(
                f"DB_PREPARE_THRESHOLD must be a whole number ≥ 0 (runs of a statement on a connection "
                f"before it is prepared) or empty (never prepare), got {threshold!r}"
            )
        options["prepare_threshold"] = int(threshold) if threshold else None
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env.str("SQLITE_PATH", default=str(BASE_DIR / "db.sqlite3")),
            # Writers wait for each other instead of failing with "database is locked".
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, channel layer, Celery -------------------------------------------------------------
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    CHANNEL_LAYERS = {
        "default": {
            # Redis pub/sub: a group send is one PUBLISH. channels_redis' list-based layer
            # (channels_redis.core) spends several round trips and a Lua script on each group send —
            # 2.9 ms of the sender's CPU per order change (two groups) against 0.7 (bench/RESULTS.md,
            # session 11). Pub/sub keeps no backlog: a message published while a process is not
            # subscribed (a reconnect) is lost to it, as a message dropped from a full channel was;
            # the order stream's numbers show the hole and its log fills it (orders.services.publish).
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_timeout": 15}],
                "prefix": env.str("CHANNEL_LAYER_PREFIX", default="odum"),
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # kombu's Redis transport, one client per channel instead of one per command (odum_live/broker.py).
    CELERY_BROKER_TRANSPORT = "odum_live.broker:Transport"
CELERY_RESULT_BACKEND = None
# Embedded default: tasks run in-process, right after the transaction that enqueued them commits.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# The trading worker hosts one TradingNode in its own process: tasks must run there (solo pool).
CELERY_WORKER_POOL = "solo"
# Seconds a publish may wait for the broker before dispatch is recorded as failed (the sweeper retries).
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=2.0)
CELERY_TASK_PUBLISH_RETRY = False
# No reconnect loop inside a publish: with the broker down the hand-off fails at once (the order
# stays ROUTED with a DISPATCH_FAILED event and the sweeper retries) instead of holding the request.
# And no wait without end on a broker that holds the connection open but does not answer (failed over,
# or dropped by a NAT or firewall: a kept publishing connection, orders.services.dispatch): kombu's
# ``socket_timeout`` bounds each command of a publish; the worker's BRPOP runs in the event loop, not under it.
CELERY_BROKER_TRANSPORT_OPTIONS = {"max_retries": env.int("CELERY_BROKER_MAX_RETRIES", default=0),
                                   "socket_timeout": CELERY_BROKER_CONNECTION_TIMEOUT}
# Celery's Django fixup closes the worker's database connection before and after *every* task unless
# this is set: each venue command then paid a new PostgreSQL connection (measured: ~12 ms of the
# trading worker's claim, bench/e2e_latency.py). With it the fixup closes them every N tasks, and
# celery_app.py drops a broken or CONN_MAX_AGE-expired connection before each task, as Django does
# per request (``close_old_connections``).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)

# --- Auth, passwords, i18n ------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The traders' pages (templates/registration/login.html); after login they land on the order ticket.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "live-execute"
LOGOUT_REDIRECT_URL = "login"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Only when present: git keeps no empty folders, and a missing one fails `check --deploy` (staticfiles.W004).
STATICFILES_DIRS = [path for path in [BASE_DIR / "static"] if path.is_dir()]

# --- DRF, API docs ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "orders.api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Request bodies are JSON only: a form can spell neither null nor a JSON integer, and DRF's form
    # parsers read a malformed multipart body as an empty one (a cancel went through). Others: 415.
    "DEFAULT_PARSER_CLASSES": ["orders.api.parsers.JsonParser"],  # DRF's, nesting overflow a 400
    # Answers are JSON only, errors included: DRF's browsable API answered a browser's Accept (text/html
    # first) with an HTML page. People read the API at /api/docs/ (its views set their own renderers).
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # ?format= naming a format no renderer serves is a 400 naming it, not DRF's 404 on an existing path.
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "orders.api.negotiation.ContentNegotiation",
    "DEFAULT_METADATA_CLASS": "orders.api.schema.SchemaPointerMetadata",  # OPTIONS points to the schema
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_THROTTLE_CLASSES": ["orders.api.throttling.TokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"token": env.str("API_THROTTLE_RATE", default="6000/min")},
    "COERCE_DECIMAL_TO_STRING": True,
    "EXCEPTION_HANDLER": "orders.api.errors.exception_handler",
}
REST_KNOX = {
    "AUTH_HEADER_PREFIX": "Bearer",
    "TOKEN_TTL": None,  # strategy service tokens live until revoked in admin
    "AUTO_REFRESH": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "odum-live order API",
    "DESCRIPTION": (
        "Submit, list, fetch and cancel orders; read positions; what-if pre-trade risk checks. "
        "Prices are in the instrument's quote currency, quantities in base units (contracts for "
        "derivatives), notionals in quote currency, all as decimal strings; times are ISO-8601 UTC."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI's assets come from drf-spectacular-sidecar (static files): no CDN, works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several outputs have a "status" field (order, health, risk check); name the order's enum so
    # the schema does not fall back to a hashed name (drf_spectacular.W001 in `check --deploy`).
    "ENUM_NAME_OVERRIDES": {"OrderStatusEnum": "orders.models.Order.Status"},
    # The order, what-if and cancel bodies refuse unknown fields: the schema says so.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "orders.api.schema.refuse_unknown_fields",
                             "orders.api.schema.refuse_nul_in_text_parameters",
                             "orders.api.schema.document_not_acceptable"],
}

# --- Production hardening (manage.py check --deploy clean when DEBUG is off) ----------------
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # Probes from inside the deployment speak plain HTTP: container health checks and Prometheus.
    SECURE_REDIRECT_EXEMPT = [r"^api/health$", r"^metrics$"]
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"

# --- Logging --------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- odum-live ------------------------------------------------------------------------------
ODUM = {
    # Seconds after which a quote no longer counts as a fresh reference price (risk, router).
    "MARKET_DATA_MAX_AGE_SECS": env.int("MARKET_DATA_MAX_AGE_SECS", default=10),
    # Seconds an order may stay ROUTED before the sweeper dispatches it again.
    "DISPATCH_RETRY_AFTER_SECS": env.int("DISPATCH_RETRY_AFTER_SECS", default=15),
    # Seconds after acceptance past which an order never received by the trading worker is
    # REJECTED instead of sent (it would reach the market late, at a price chosen for another time).
    "DISPATCH_MAX_AGE_SECS": env.int("DISPATCH_MAX_AGE_SECS", default=120),
    # Seconds an order may wait ROUTED, SUBMITTED (no venue answer) or PENDING_CANCEL before health
    # reports it stuck (odum_live/health.py, check_stuck_orders): past DISPATCH_MAX_AGE_SECS, and past
    # NautilusTrader's own in-flight resolution (~5 queries 5 s apart, LiveExecEngineConfig defaults).
    "ORDER_STUCK_AFTER_SECS": env.int("ORDER_STUCK_AFTER_SECS", default=300),
    # Basis points added to a venue's cost per millisecond of estimated latency (router).
    "ROUTER_LATENCY_PENALTY_BPS_PER_MS": env.str("ROUTER_LATENCY_PENALTY_BPS_PER_MS", default="0.01"),
    # Seconds the trading node heartbeat may age before health reports it down.
    "NODE_HEARTBEAT_MAX_AGE_SECS": env.int("NODE_HEARTBEAT_MAX_AGE_SECS", default=15),
    # Seconds a trading worker that stopped cleanly (its final beat says so) is shown as stopped in
    # health and /status before it is forgotten; and seconds one that stopped beating without
    # that final beat (died) stays reported down after its last beat (odum_live/health.py).
    "NODE_STOPPED_SHOWN_SECS": env.int("NODE_STOPPED_SHOWN_SECS", default=300),
    "NODE_WORKER_FORGET_SECS": env.int("NODE_WORKER_FORGET_SECS", default=86400),
    # Basis points charged for the part of an order a venue's visible book cannot fill (router).
    "ROUTER_DEPTH_SHORTFALL_PENALTY_BPS": env.str("ROUTER_DEPTH_SHORTFALL_PENALTY_BPS", default="50"),
    # Venue circuit breakers (venues/circuit.py, pybreaker): consecutive failures that open a
    # venue's circuit, seconds before it half-opens, Redis key prefix and Redis read timeout.
    "CIRCUIT_FAIL_MAX": env.int("CIRCUIT_FAIL_MAX", default=5),
    "CIRCUIT_RESET_TIMEOUT_SECS": env.float("CIRCUIT_RESET_TIMEOUT_SECS", default=30.0),
    "CIRCUIT_PREFIX": env.str("CIRCUIT_PREFIX", default="odum:circuit"),
    "CIRCUIT_REDIS_TIMEOUT_SECS": env.float("CIRCUIT_REDIS_TIMEOUT_SECS", default=0.25),
    # Redis hash holding the latest market snapshot per instrument (venues/marketdata.py).
    "MARKET_DATA_PREFIX": env.str("MARKET_DATA_PREFIX", default="odum:md"),
    # Entries kept per order stream (orders.services.publish) for WebSocket resumes (?since=<seq>);
    # a subscriber further behind is told to take a fresh snapshot.
    "ORDER_STREAM_MAXLEN": env.int("ORDER_STREAM_MAXLEN", default=10000),
    # Seconds between a WebSocket connection's (/ws/orders/, /ws/live/) renewals of its group memberships
    # and checks of its credentials and scope that no access.changed prompts (odum_live/ws_renewal.py).
    "WS_RENEW_SECS": env.float("WS_RENEW_SECS", default=3600.0),
    # Register the benchmark-only floor endpoint (bench/api_submit.py); never in production.
    "BENCH_ENDPOINTS": env.bool("ODUM_BENCH_ENDPOINTS", default=False),
    # Where the TradingNode runs (venues/node/host.py): "embedded" = inside this web process (the
    # embedded default: eager Celery, no broker), "worker" = only in `celery -A celery_app worker
    # -Q venues`, "off" = nowhere in this process (orders stay ROUTED; tests of other parts).
    "TRADING_NODE": env.str("TRADING_NODE", default="worker" if REDIS_URL else "embedded"),
    # NautilusTrader trader id of the node; a restart with the same id resumes its Redis cache.
    "NODE_TRADER_ID": env.str("NODE_TRADER_ID", default="ODUM-001"),
    # The node-ownership lease (venues/node/lease.py): one running node per trader id across trading
    # workers. Seconds the lease lives without renewal (renewed every quarter of it), and seconds a
    # starting trading worker waits for another holder's lease before it exits (longer than the TTL,
    # so a crashed predecessor's lease expires first).
    "NODE_LEASE_TTL_SECS": env.float("NODE_LEASE_TTL_SECS", default=15.0),
    "NODE_LEASE_WAIT_SECS": env.float("NODE_LEASE_WAIT_SECS", default=30.0),
    # NautilusTrader log level of the node (process-global: the first node's wins).
    "NODE_LOG_LEVEL": env.str("NODE_LOG_LEVEL", default="INFO"),
    # Seconds the node may take to become ready (bridge strategy running) before start fails.
    "NODE_START_TIMEOUT_SECS": env.float("NODE_START_TIMEOUT_SECS", default=30.0),
    # Persist the node's own cache (orders, positions) in REDIS_URL so a restart resumes.
    "NODE_CACHE_REDIS": env.bool("NODE_CACHE_REDIS", default=bool(REDIS_URL)),
    # Longest the node's thread waits for an idle journal writer to record a venue event it has just
    # handed over, before its own book-keeping goes on (venues/journal.py, submit_and_wait); 0: never.
    "NODE_JOURNAL_WAIT_SECS": env.float("NODE_JOURNAL_WAIT_SECS", default=0.01),
    # Seconds a venue command waits for the node to become ready before the order is rejected.
    "NODE_READY_WAIT_SECS": env.float("NODE_READY_WAIT_SECS", default=15.0),
    # The node's own risk engine rate limits ("N/HH:MM:SS"; NautilusTrader denies, not queues, beyond
    # them): a safety net above our pre-trade velocity limits and the algorithms' slice rate
    # (venues/node/config.py: node_risk_engine_config says how the figure is sized).
    "NODE_MAX_ORDER_SUBMIT_RATE": env.str("NODE_MAX_ORDER_SUBMIT_RATE", default="1000/00:00:01"),
    "NODE_MAX_ORDER_MODIFY_RATE": env.str("NODE_MAX_ORDER_MODIFY_RATE", default="1000/00:00:01"),
    # Seconds between market-data snapshot rounds from the node, and between position marks.
    "MARKET_DATA_PUBLISH_SECS": env.float("MARKET_DATA_PUBLISH_SECS", default=0.25),
    "POSITION_MARK_SECS": env.float("POSITION_MARK_SECS", default=1.0),
    # Minimum seconds between two equity-curve snapshots of a position taken from marks (every fill
    # is recorded); and between two "positions changed" pushes to the live pages per process.
    "EQUITY_SNAPSHOT_SECS": env.float("EQUITY_SNAPSHOT_SECS", default=60.0),
    "POSITIONS_PUBLISH_SECS": env.float("POSITIONS_PUBLISH_SECS", default=1.0),
}
