"""Schemathesis hooks for surechat's API document.

An upload chunk (PATCH /v1/uploads/{id}) is sent as `application/offset+octet-stream`, the tus
media type; its body is plain bytes, serialised like `application/octet-stream`.
"""
import schemathesis

schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
