"""Routes every deployment has: health, the OpenAPI document, runtime configs."""
