# The two commands a newcomer needs. Each sets up what is missing first.
.PHONY: run test

# Run the service on the demo configuration (shared model pack, shared clip as a looping
# camera, status page on http://127.0.0.1:8080, MQTT off).
run:
	scripts/setup_env.sh run
	scripts/demo.sh

# Run the whole test suite (installs Mosquitto, Chromium, Samba and the test packages),
# after the checks that keep the code's shape: lint, types, the layers contract.
test:
	scripts/setup_env.sh test
	.venv/bin/ruff check edge tests scripts
	.venv/bin/mypy
	.venv/bin/lint-imports
	.venv/bin/python -m pytest $(PYTEST_ARGS)
