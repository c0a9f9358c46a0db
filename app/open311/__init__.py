"""Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2): categories as services, appeals
as service requests, in XML and JSON, authenticated by a machine client's api_key."""
