"""SQLite storage (job queue, gallery index, metrics) and the image files.

Only ``desktop_app.domain``, the standard library and Pillow are imported here;
every call blocks and belongs on the engine's store thread, never the UI thread.
"""
