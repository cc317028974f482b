CREATE
TEMPORARY TABLE attainment_changed ON
COMMIT
DROP AS WITH ff AS
  (SELECT "pipeline_opportunity"."owner_id" AS "f_rep",
          "crm_region"."path" AS "f_path",
          CASE
              WHEN "crm_customer"."first_won_on" < (CASE
                                                        WHEN ("pipeline_stage"."is_won"
                                                              AND "pipeline_opportunity"."closed_on" BETWEEN '2027-01-01'::date AND '2027-09-15'::date) THEN "pipeline_opportunity"."closed_on"
                                                        ELSE "pipeline_opportunity"."expected_close_date"
                                                    END) THEN 'existing'
              ELSE 'new'
          END AS "f_seg",
          CASE
              WHEN ("pipeline_stage"."is_won"
                    AND "pipeline_opportunity"."closed_on" BETWEEN '2027-01-01'::date AND '2027-09-15'::date) THEN false
              ELSE true
          END AS "f_open",
          CASE
              WHEN ("pipeline_stage"."is_won"
                    AND "pipeline_opportunity"."closed_on" BETWEEN '2027-01-01'::date AND '2027-09-15'::date) THEN 0
              ELSE COALESCE("pipeline_opportunity"."probability", 0)
          END AS "f_prob",
          CASE
              WHEN ("pipeline_stage"."is_won"
                    AND "pipeline_opportunity"."closed_on" BETWEEN '2027-01-01'::date AND '2027-09-15'::date) THEN "pipeline_opportunity"."amount_company"
              ELSE "pipeline_opportunity"."amount_company"
          END AS "value",
          CASE
              WHEN ("pipeline_stage"."is_won"
                    AND "pipeline_opportunity"."closed_on" BETWEEN '2027-01-01'::date AND '2027-09-15'::date) THEN "pipeline_opportunity"."closed_on"
              ELSE "pipeline_opportunity"."expected_close_date"
          END AS "f_day"
   FROM "pipeline_opportunity"
   INNER JOIN "pipeline_stage" ON ("pipeline_opportunity"."stage_id" = "pipeline_stage"."id")
   LEFT OUTER JOIN "crm_customer" ON ("pipeline_opportunity"."customer_id" = "crm_customer"."id")
   INNER JOIN "crm_region" ON ("pipeline_opportunity"."region_id" = "crm_region"."id")
   WHERE (("pipeline_stage"."is_won"
           AND "pipeline_opportunity"."closed_on" BETWEEN '2027-01-01'::date AND '2027-09-15'::date)
          OR (NOT "pipeline_stage"."is_lost"
              AND NOT "pipeline_stage"."is_won"
              AND "pipeline_opportunity"."expected_close_date" BETWEEN '2027-01-01'::date AND '2027-12-31'::date))),
             ffd AS
  (SELECT *
   FROM
     (SELECT f.*,
             ('{2027-01-01,2027-02-01,2027-03-01,2027-04-01,2027-05-01,2027-06-01,2027-07-01,2027-08-01,2027-09-01,2027-10-01,2027-11-01,2027-12-01}'::date[]::date[])[width_bucket(f.f_day, '{2027-01-01,2027-02-01,2027-03-01,2027-04-01,2027-05-01,2027-06-01,2027-07-01,2027-08-01,2027-09-01,2027-10-01,2027-11-01,2027-12-01}'::date[]::date[])] AS p_start,
             ('{2027-01-31,2027-02-28,2027-03-31,2027-04-30,2027-05-31,2027-06-30,2027-07-31,2027-08-31,2027-09-30,2027-10-31,2027-11-30,2027-12-31}'::date[]::date[])[width_bucket(f.f_day, '{2027-01-01,2027-02-01,2027-03-01,2027-04-01,2027-05-01,2027-06-01,2027-07-01,2027-08-01,2027-09-01,2027-10-01,2027-11-01,2027-12-01}'::date[]::date[])] AS p_end
      FROM ff f) f
   WHERE f.f_day <= f.p_end),
             leaf AS MATERIALIZED
  (SELECT y.id,
          y.parent_id,
          COALESCE(SUM(y.value) FILTER (
                                        WHERE NOT y.f_open), 0)::bigint AS actual,
          COALESCE(ROUND(SUM(y.value * y.prob) FILTER (
                                                       WHERE y.f_open) / 100.0), 0)::bigint AS weighted,
          COALESCE(SUM(y.value) FILTER (
                                        WHERE y.f_open), 0)::bigint AS open
   FROM
     (SELECT l.id,
             l.parent_id,
             (f.value * 100)::bigint AS value,
             f.f_open,
             f.f_prob AS prob
      FROM ffd f
      JOIN targets_targetnode l ON l.period_start = f.p_start
      AND l.period_end = f.p_end
      AND l.rep_id = f.f_rep
      AND l.region_id = NULLIF(split_part(f.f_path, '/', 3), '')::bigint
      WHERE l.plan_id = :plan_id
        AND l.split_dimension = ''
        AND NOT l.unassigned
        AND l.rep_id IS NOT NULL
        AND l.product_line_id IS NULL
        AND l.product_id IS NULL
        AND l.segment = '') y
   GROUP BY y.id,
            y.parent_id), node AS MATERIALIZED
  (SELECT id,
          parent_id,
          amount,
          length(path) / 5 AS level,
          split_dimension <> '' AS is_inner
   FROM targets_targetnode
   WHERE plan_id = :plan_id), lp AS MATERIALIZED
  (SELECT t.id,
          t.parent_id,
          t.level,
          g.actual,
          g.weighted,
          g.open
   FROM
     (SELECT c.parent_id AS id,
             SUM(c.actual)::bigint AS actual,
             SUM(c.weighted)::bigint AS weighted,
             SUM(c.open)::bigint AS open
      FROM leaf c
      GROUP BY c.parent_id) g
   JOIN node t ON t.id = g.id), upper_node AS MATERIALIZED
  (SELECT id,
          parent_id
   FROM node
   WHERE level < 3
     AND is_inner), level2 AS MATERIALIZED
  (SELECT g.id,
          t.parent_id,
          g.actual,
          g.weighted,
          g.open
   FROM
     (SELECT c.parent_id AS id,
             SUM(c.actual)::bigint AS actual,
             SUM(c.weighted)::bigint AS weighted,
             SUM(c.open)::bigint AS open
      FROM lp c
      GROUP BY c.parent_id) g
   JOIN upper_node t ON t.id = g.id), level1 AS MATERIALIZED
  (SELECT g.id,
          t.parent_id,
          g.actual,
          g.weighted,
          g.open
   FROM
     (SELECT c.parent_id AS id,
             SUM(c.actual)::bigint AS actual,
             SUM(c.weighted)::bigint AS weighted,
             SUM(c.open)::bigint AS open
      FROM level2 c
      GROUP BY c.parent_id) g
   JOIN upper_node t ON t.id = g.id), up AS
  (SELECT id,
          actual,
          weighted,
          open
   FROM leaf
   UNION ALL SELECT id,
                    actual,
                    weighted,
                    open
   FROM lp
   UNION ALL SELECT id,
                    actual,
                    weighted,
                    open
   FROM level2
   UNION ALL SELECT id,
                    actual,
                    weighted,
                    open
   FROM level1),
                                      changed AS
  (SELECT n.id AS node_id,
          n.amount AS target,
          COALESCE(up.actual, 0) / 100.0 AS actual,
          COALESCE(up.weighted, 0) / 100.0 AS weighted,
          COALESCE(up.open, 0) / 100.0 AS open
   FROM node n
   LEFT JOIN up ON up.id = n.id
   LEFT JOIN targets_latestattainment p ON p.node_id = n.id
   WHERE (p.node_id IS NULL
          OR p.target <> n.amount
          OR p.actual * 100 <> COALESCE(up.actual, 0)
          OR p.weighted_pipeline * 100 <> COALESCE(up.weighted, 0)
          OR p.open_pipeline * 100 <> COALESCE(up.open, 0)))
SELECT *
FROM changed
