"""Client-side tooling for customs' CEB messages (spec §7.5): `writer` turns §4 REST bodies into CEB XML."""
