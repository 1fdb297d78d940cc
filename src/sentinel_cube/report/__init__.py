"""Reports of a products table: plain-text summaries and a static HTML report.

:func:`write_report` writes the HTML report (a folder of pages that open
offline); :func:`products_table` and :func:`metadata_summary` are the text views
the command line prints; :func:`write_products` saves a products table.
"""

from ._html import write_report
from ._summary import metadata_summary, products_table, write_products

__all__ = ["metadata_summary", "products_table", "write_products", "write_report"]
