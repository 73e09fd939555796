"""The inference server (ml/serve.py, ml/http_server.py) under the SageMaker container contract: its protocol over
real HTTP (test_serve.py, test_serve_http.py), the values it accepts (test_serve_values.py), a fuzzer
(test_serve_fuzz.py). helpers.py trains the small real model they serve and speaks raw HTTP; conftest.py holds the
fixtures that serve it."""
