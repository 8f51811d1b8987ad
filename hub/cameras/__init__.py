"""Public-security cameras (雪亮工程): the registry, its seed file, and pushed alarms.

The media plane (streams/) reaches cameras only through ``CameraRegistry``: it looks them
up, reports their status and hooks into alarms; it never touches the table itself.
"""
