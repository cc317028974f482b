"""Events the organisation publishes for the apps above it (crm never imports them; they subscribe)."""

from django.dispatch import Signal

# A user was moved to another team (region): `user`, `previous_region_id`, `actor`. The pipeline moves the
# user's open deals along (their credited team follows the owner until they close).
user_team_changed = Signal()
