"""schemathesis hooks for tests/http_api.rs.

Remote-write and OTLP take `application/x-protobuf`, which schemathesis
cannot serialise on its own: the generated binary bodies are sent as they
are (what the server then meets is arbitrary bytes, as a fuzzer would send).
"""
import schemathesis


@schemathesis.serializer("application/x-protobuf")
def to_protobuf(ctx, value):
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return repr(value).encode()
