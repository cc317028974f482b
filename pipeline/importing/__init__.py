"""Import services: customers, opportunities and historical won deals from CSV / XLSX / XLS files.

The flow is the same for the browser wizard, `manage.py import_opportunities` and `manage.py import_maven`:

1. `read_table` (salesmgmt.lib.tabular) turns the file into headers and rows;
2. a mapping says which column feeds which field (`guess_mapping` proposes one from the headers);
3. `import_validate` checks every row *without writing anything*: it parses dates, amounts and ids, finds
   reps, regions, products, customers and stages, applies the importing user's data scope and collects
   row-level errors. Unknown reps, regions, products and customers are errors unless `create_missing` is
   set, in which case they are planned for creation (never silently);
4. only a plan without errors is applied, by `import_apply`, in one `transaction.atomic`: a file with bad
   rows never half-imports. Unless the import is partial (`ImportOptions.skip_bad_rows`, off by default):
   then `Plan.good_rows_only` keeps the good rows and only the new records they name (a customer or region
   planned by a bad row alone is dropped), they are applied in one transaction, and `rejected` hands the
   bad rows back in the uploaded format (CSV or XLSX) with their row number and reason.

What a row names is created as trees with `create_missing`: the region, state and city columns are one path
(Region -> State -> City) created under the importing user's own region, never matched to a same-named
region elsewhere in the company; the product line and sub-line columns (Category -> Sub-Category) are
product lines, a product sits in the deepest. Rows without a rep get the manager of their region (nearest up
the tree) or a default owner when the options say so. Generated product and product-line codes never match
another record's name or code (`resolving.assign_codes`). Amounts are rounded half up to the cent, and the
plan counts the rows where that changed the amount (`Plan.rounded_rows`, shown in the preview).

Duplicate ids: an `external_id` repeated in the file, or one that already exists in the database, is a row
error. Re-importing the same file therefore fails with an "already imported" error on every row and writes
nothing (`import_maven` uses this to be idempotent: it only feeds rows whose id is new).

Deals are bulk-created for speed (the Maven file has 8,800 rows) but end up exactly as
`pipeline.services.opportunity_create` leaves them: amount in company currency at the rate of the close
date, probability and forecast category from the stage, `closed_on` for won/lost, one product line when a
product is given, the initial-stage history row, an audit row, and `first_won_on` refreshed set-based.

Modules: `fields` (what an import fills, header synonyms, mapping), `plan` (options, row errors, the plan),
`resolving` (matching reps, regions, products, customers and stages), `checking` (`import_validate`), `creating`
(the planned regions, product lines, products, reps and customers, in bulk a tree level at a time), `writing`
(`import_apply`), `rejected` (the rejected-rows file) and `jobs` (the wizard's ImportJob from upload to commit).
"""

from pipeline.importing.checking import import_validate
from pipeline.importing.fields import fields_for, guess_mapping, required_fields
from pipeline.importing.jobs import (
    EDITABLE_STATUSES,
    can_import,
    import_job_commit,
    import_job_create,
    import_job_start,
    import_job_table,
    import_job_validate,
    read_upload,
)
from pipeline.importing.plan import ImportOptions
from pipeline.importing.rejected import rejected_file_name
from pipeline.importing.writing import import_apply, import_job_written

# Re-exported as the seam that tests patch to make a commit fail half-way; `writing` calls it through here.

__all__ = [
    "EDITABLE_STATUSES",
    "ImportOptions",
    "can_import",
    "fields_for",
    "guess_mapping",
    "import_apply",
    "import_job_commit",
    "import_job_create",
    "import_job_start",
    "import_job_table",
    "import_job_validate",
    "import_job_written",
    "import_validate",
    "read_upload",
    "rejected_file_name",
    "required_fields",
]
