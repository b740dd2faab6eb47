"""Build time: the CloudFormation resources generated from the code, and the packaging around `chalice package`.

Never shipped: `chalice package` zips app.py and chalicelib/ only, and a test unpacks the prod zip to check that no
template-generation module is in it (tests/test_package.py). The services declare what the build reads, as data in
their own packages: tables (PynamoDB models), the queues their handlers consume or send to, their grants
(chalicelib/<service>/access.py); this package turns those into the template.
"""
