"""The media plane (camera ingest, WebRTC). Imports protocols/, never hub/."""
