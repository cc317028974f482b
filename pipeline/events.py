"""What happens in the pipeline, for the apps above it to act on (they subscribe in their `ready()`).

Published through the outbox (`salesmgmt.events`): the subscribed tasks are recorded in the change's
transaction and run after it commits. The arguments are the subscribers' task arguments.
"""

from salesmgmt.events import Event

# A deal's figures may have moved (created, edited, moved stage, deleted): `deal_id`, and where it counted
# before the change: `previous_owner_id` (None if unchanged), `previous_close_days` (ISO dates of its earlier
# close or expected-close dates, [] if none), `previous_region_id` (None if unchanged).
deal_figures_changed = Event("deal.figures_changed")

# A payment was recorded against a won deal: `collection_id`.
collection_recorded = Event("collection.recorded")

# A bulk import committed (file import or the Maven loader): no arguments; whatever derives from deals is
# rebuilt from them.
import_committed = Event("import.committed")

# A visit, call or meeting was logged (a process measure, 过程量): `activity_id`.
activity_logged = Event("activity.logged")
