"""Field types shared by the request bodies: strict numbers and plain strings.

Validation happens here, at the edge, before any work: a body that fails it is a 422 naming the
field and the rule, and nothing is written.
"""

from pydantic import StrictFloat, StrictInt

Number = StrictInt | StrictFloat
