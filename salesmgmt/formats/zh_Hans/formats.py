# Chinese business software groups money by thousands (3,300,000.00); Django's zh_Hans default has no separator.
from django.conf.locale.zh_Hans.formats import *  # noqa: F403

THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
