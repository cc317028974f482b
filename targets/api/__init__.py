"""The targets app's DRF endpoints, one module per room; `salesmgmt.api_urls` registers them."""
