"""The contract suite: what an outside platform or agency runs against its own implementation before it
goes live (`python -m tooling.contracts.suite --help`, and docs/contracts.md).

- `platform`: checks a platform's documents against the REST contracts and the rules between documents
  (JSON bodies, or customs' CEB XML messages mapped to them: `ceb.py`);
- `agency`: plays golden events for one agency role onto a broker and checks the agency's answers.

Both stand on the contracts (`contracts/`) and the domain rules alone: nothing here imports an agency. The CEB
mode imports the gateway's published CEB codec (`services.gateway.ceb.messages`, `mapping`, `receipts`), which
is the front door's contract: it judges CEB messages with the mapping integrators are told about."""
