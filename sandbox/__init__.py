"""Stand-ins for the external systems, speaking the real wire protocols on 127.0.0.1."""
