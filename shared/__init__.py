"""The runtime every service uses: settings, database, Kafka in and out, outbox, inbox, HTTP basics."""
