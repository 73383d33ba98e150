"""Status page and JSON API (Flask app factory), served by waitress inside facepro run."""
