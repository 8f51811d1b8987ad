"""The smart city-management system (智慧城管): Open311 GeoReport v2 requests in, request
updates out. See adapters/citymgmt/adapter.py."""
