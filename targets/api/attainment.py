"""REST reads of attainment (达成率): the latest figures of a target and its parts, a target's trend, and a
plan per rep, region or month.

Targets come from `nodes_visible_to(user)`, so a target outside the user's scope is a 404, and its
parts are limited to the visible ones; figures are the stored snapshots with their derived ratios.
"""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from crm.scopes import attainment_data_keys
from salesmgmt import freshness
from salesmgmt.api import api_responses, query_data
from targets import access
from targets.attainment.selectors import (
    DIMENSIONS,
    against_original,
    attainment_by_dimension,
    attainment_of,
    history,
    pace_class,
)
from targets.planning.selectors import TREE_RELATED, nodes_visible_to


class AttainmentFiguresSerializer(serializers.Serializer):
    as_of = serializers.DateField(help_text=_("The day the figures are for (today for the latest figures)."))
    changed_on = serializers.DateField(help_text=_("The day the figures or the target last changed."))
    actual = serializers.DecimalField(max_digits=18, decimal_places=2)
    target = serializers.DecimalField(max_digits=18, decimal_places=2)
    weighted_pipeline = serializers.DecimalField(max_digits=18, decimal_places=2)
    open_pipeline = serializers.DecimalField(max_digits=18, decimal_places=2)
    attainment = serializers.DecimalField(
        max_digits=12, decimal_places=4, allow_null=True, help_text=_("A fraction: 0.42 is 42 %.")
    )
    gap = serializers.DecimalField(max_digits=18, decimal_places=2)
    time_progress = serializers.DecimalField(max_digits=12, decimal_places=4)
    pace_gap = serializers.DecimalField(
        max_digits=12, decimal_places=4, allow_null=True, help_text=_("Attainment minus time progress.")
    )
    pace = serializers.ChoiceField(choices=["good", "warn", "bad", ""])
    coverage = serializers.DecimalField(max_digits=12, decimal_places=4, allow_null=True)
    run_rate_forecast = serializers.DecimalField(max_digits=18, decimal_places=2)
    stretch = serializers.DecimalField(
        max_digits=18, decimal_places=2, allow_null=True, help_text=_("The stretch target (冲刺), if any.")
    )
    challenge = serializers.DecimalField(
        max_digits=18, decimal_places=2, allow_null=True, help_text=_("The challenge target (挑战), if any.")
    )
    base_pct = serializers.DecimalField(
        max_digits=12, decimal_places=1, allow_null=True, help_text=_("Attainment vs the base target, in %.")
    )
    stretch_pct = serializers.DecimalField(
        max_digits=12, decimal_places=1, allow_null=True, help_text=_("Attainment vs the stretch target, in %.")
    )
    challenge_pct = serializers.DecimalField(
        max_digits=12, decimal_places=1, allow_null=True, help_text=_("Attainment vs the challenge target, in %.")
    )


class NodeAttainmentSerializer(serializers.Serializer):
    node = serializers.IntegerField()
    label = serializers.CharField()
    parent = serializers.IntegerField(allow_null=True)
    figures = AttainmentFiguresSerializer(allow_null=True, help_text=_("Null until a snapshot exists."))
    target_in_force = serializers.DecimalField(
        max_digits=18, decimal_places=2, help_text=_("The target of the plan's version in force.")
    )
    original_target = serializers.DecimalField(
        max_digits=18,
        decimal_places=2,
        allow_null=True,
        help_text=_(
            "The target in the plan's first approved version (the original plan); 0 for a target added by a later "
            "adjustment, null while the plan was never approved."
        ),
    )
    attainment_in_force_pct = serializers.DecimalField(
        max_digits=12,
        decimal_places=1,
        allow_null=True,
        help_text=_(
            "The latest actual against the target in force, in % "
            "(null for a zero target, a plan never approved, or until a snapshot exists)."
        ),
    )
    original_attainment_pct = serializers.DecimalField(
        max_digits=12,
        decimal_places=1,
        allow_null=True,
        help_text=_(
            "The latest actual against the original target, in % "
            "(null for a zero original target or until a snapshot exists)."
        ),
    )


class NodeQuerySerializer(serializers.Serializer):
    node = serializers.IntegerField(help_text=_("A target node id."))


class DimensionQuerySerializer(serializers.Serializer):
    plan = serializers.IntegerField(help_text=_("A target plan id."))
    dimension = serializers.ChoiceField(choices=DIMENSIONS)


class DimensionRowSerializer(serializers.Serializer):
    key = serializers.CharField(help_text=_("The rep or region id, or the month's period key."))
    label = serializers.CharField()
    rank = serializers.IntegerField(help_text=_("By attainment, best first (months are listed in time order)."))
    actual = serializers.DecimalField(max_digits=18, decimal_places=2)
    target = serializers.DecimalField(max_digits=18, decimal_places=2)
    attainment = serializers.DecimalField(max_digits=12, decimal_places=4, allow_null=True)
    time_progress = serializers.DecimalField(max_digits=12, decimal_places=4, allow_null=True)
    pace_gap = serializers.DecimalField(max_digits=12, decimal_places=4, allow_null=True)
    pace = serializers.ChoiceField(choices=["good", "warn", "bad", ""])


def _figures(att) -> dict:
    snapshot, derived = att.snapshot, att.derived
    return {
        "as_of": att.as_of,
        "changed_on": att.changed_on,
        "actual": snapshot.actual,
        "target": snapshot.target,
        "weighted_pipeline": snapshot.weighted_pipeline,
        "open_pipeline": snapshot.open_pipeline,
        "attainment": derived.attainment,
        "gap": derived.gap,
        "time_progress": derived.time_progress,
        "pace_gap": derived.pace_gap,
        "pace": pace_class(derived.pace_gap),
        "coverage": derived.coverage,
        "run_rate_forecast": derived.run_rate_forecast,
        "stretch": att.stretch,
        "challenge": att.challenge,
        "base_pct": att.base_pct,
        "stretch_pct": att.stretch_pct,
        "challenge_pct": att.challenge_pct,
    }


NODE_PARAM = OpenApiParameter("node", int, required=True, description=_("A target node id."))


class AttainmentViewSet(viewsets.ViewSet):
    """Attainment of the targets in your data scope."""

    def _node(self, request):
        query = NodeQuerySerializer(data=query_data(request))
        if not query.is_valid():
            raise ValidationError(query.errors)
        return access.visible_node(request.user, query.validated_data["node"])

    @extend_schema(
        summary=_("Latest attainment of a target and of its visible parts"),
        parameters=[NODE_PARAM],
        responses=api_responses({200: NodeAttainmentSerializer(many=True)}, 400, 404),
    )
    @freshness.cached_data(attainment_data_keys)
    def list(self, request):
        node = self._node(request)
        children = list(
            nodes_visible_to(request.user).filter(parent=node).select_related(*TREE_RELATED).order_by("path")
        )
        nodes = [node, *children]
        figures = attainment_of(nodes)
        for n in nodes:
            n.attainment = figures.get(n.pk)  # read once, for `against_original` too
        versus = against_original(nodes)
        rows = []
        for n in nodes:
            att = figures.get(n.pk)
            vs = versus.get(n.pk)
            rows.append(
                {
                    "node": n.pk,
                    "label": n.label,
                    "parent": n.parent_id,
                    "figures": None if att is None else _figures(att),
                    "target_in_force": n.amount,
                    "original_target": None if vs is None else vs.original,
                    "attainment_in_force_pct": None if vs is None else vs.current_pct,
                    "original_attainment_pct": None if vs is None else vs.original_pct,
                }
            )
        return Response(NodeAttainmentSerializer(rows, many=True).data)

    @extend_schema(
        summary=_("Attainment of a target over time (oldest first, one entry per day it changed), for a trend"),
        parameters=[NODE_PARAM],
        responses=api_responses({200: AttainmentFiguresSerializer(many=True)}, 400, 404),
    )
    @action(detail=False, methods=["get"])
    def history(self, request):
        rows = [_figures(att) for att in history(self._node(request))]
        return Response(AttainmentFiguresSerializer(rows, many=True).data)

    @extend_schema(
        summary=_("Attainment of a plan per rep, region or month, in your data scope"),
        parameters=[
            OpenApiParameter("plan", int, required=True, description=_("A target plan id.")),
            OpenApiParameter("dimension", str, required=True, enum=[*DIMENSIONS]),
        ],
        responses=api_responses({200: DimensionRowSerializer(many=True)}, 400, 404),
    )
    @action(detail=False, methods=["get"], url_path="by-dimension")
    def by_dimension(self, request):
        query = DimensionQuerySerializer(data=query_data(request))
        if not query.is_valid():
            raise ValidationError(query.errors)
        plan = access.visible_plan(request.user, query.validated_data["plan"])
        rows = [
            {
                "key": str(key),
                "label": label,
                "rank": row.rank,
                "actual": row.actual,
                "target": row.target,
                "attainment": row.attainment,
                "time_progress": row.time_progress,
                "pace_gap": row.pace_gap,
                "pace": row.pace,
            }
            for key, label, row in attainment_by_dimension(request.user, plan, query.validated_data["dimension"])
        ]
        return Response(DimensionRowSerializer(rows, many=True).data)
