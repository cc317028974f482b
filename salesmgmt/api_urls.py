from django.urls import include, path
from rest_framework.routers import DefaultRouter

from coaching.api import analytics as coaching_analytics_api
from coaching.api import flow as coaching_flow_api
from coaching.api import forecast as coaching_forecast_api
from coaching.api import meetings as coaching_meetings_api
from coaching.api import scorecard as coaching_scorecard_api
from coaching.api import sessions as coaching_sessions_api
from crm import api as crm_api
from pipeline import api as pipeline_api
from targets.api import alerts as targets_alerts_api
from targets.api import attainment as targets_attainment_api
from targets.api import metrics as targets_metrics_api
from targets.api import plans as targets_api

router = DefaultRouter()
router.register("users", crm_api.UserViewSet, basename="user")
router.register("regions", crm_api.RegionViewSet, basename="region")
router.register("product-lines", crm_api.ProductLineViewSet, basename="product-line")
router.register("products", crm_api.ProductViewSet, basename="product")
router.register("exchange-rates", crm_api.ExchangeRateViewSet, basename="exchange-rate")
router.register("customers", crm_api.CustomerViewSet, basename="customer")
router.register("pipelines", pipeline_api.PipelineViewSet, basename="pipeline")
router.register("opportunities", pipeline_api.OpportunityViewSet, basename="opportunity")
router.register("collections", pipeline_api.CollectionViewSet, basename="collection")
router.register("activities", pipeline_api.ActivityViewSet, basename="activity")
router.register("metrics", targets_metrics_api.MetricViewSet, basename="metric")
router.register("target-plans", targets_api.TargetPlanViewSet, basename="target-plan")
router.register("target-nodes", targets_api.TargetNodeViewSet, basename="target-node")
router.register("target-adjustments", targets_api.AdjustmentViewSet, basename="target-adjustment")
router.register("action-plans", targets_api.ActionPlanViewSet, basename="action-plan")
router.register("attainment", targets_attainment_api.AttainmentViewSet, basename="attainment")
router.register("alerts", targets_alerts_api.AlertViewSet, basename="alert")
router.register("alert-rules", targets_alerts_api.AlertRuleViewSet, basename="alert-rule")
router.register("notifications", targets_alerts_api.NotificationViewSet, basename="notification")
router.register("review/forecasts", coaching_forecast_api.ForecastViewSet, basename="review-forecast")
router.register("review/meetings", coaching_meetings_api.MeetingViewSet, basename="review-meeting")
router.register("review/action-items", coaching_meetings_api.ActionItemViewSet, basename="review-action-item")
router.register("review/coaching-sessions", coaching_sessions_api.SessionViewSet, basename="review-coaching-session")
router.register("review/commitments", coaching_sessions_api.CommitmentViewSet, basename="review-commitment")
router.register("review/scorecard", coaching_scorecard_api.ScorecardViewSet, basename="review-scorecard")

urlpatterns = [
    path("auth/token/", crm_api.ObtainTokenView.as_view(), name="api-token"),
    path("review/funnel/", coaching_analytics_api.FunnelView.as_view(), name="api-review-funnel"),
    path("review/win-rates/", coaching_analytics_api.WinRatesView.as_view(), name="api-review-win-rates"),
    path("review/drivers/", coaching_analytics_api.DriversView.as_view(), name="api-review-drivers"),
    path("review/flow/", coaching_flow_api.FlowView.as_view(), name="api-review-flow"),
    path("", include(router.urls)),
]
