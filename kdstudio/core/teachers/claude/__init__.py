"""Claude as a black-box teacher (``claude:MODEL_ID``), through the Anthropic Messages API.

Classification: the model answers JSON with the chosen ``label`` (an enum of the project's
labels), a ``probabilities`` object with one number property per label, and a one-line
``rationale``. The API has no log-probabilities, so the soft label is the model's *verbalized*
distribution (clipped to [1e-6, 1] and renormalised). With ``k_samples > 0`` the most uncertain
answers are asked k more times and their distribution is re-estimated from the k+1 answers
(method ``k-sample``). Generation: the completion text.

The request: a system text block with the task instructions, the labels and their descriptions
and optional few-shot examples, marked ``cache_control: ephemeral`` so every request after the
first reads the shared prefix from the prompt cache; the example is the user message. JSON
outputs (``output_config.format``) are used first; a model that rejects them gets a forced tool
call instead (and the other way round). ``temperature``/``top_p``/``top_k`` are never sent.

Real-time lane (:meth:`ClaudeTeacher.answer`): ``AsyncAnthropic`` with ``concurrency``
requests in flight, in a private event loop on a helper thread; answers are yielded in small
groups as they complete; the ``anthropic-ratelimit-*`` headers pause dispatching before the
limit is hit; the SDK retries 429/529/5xx and timeouts. Batch lane
(:meth:`ClaudeTeacher.answer_batch`): the Message Batches API at half price, resumable from the
batch ids stored in the project.

What stops a harvest (raises): a rejected key (401), no permission (403), a spend limit, a budget
that the next request would pass (:class:`BudgetExceeded`). Everything else that goes wrong with
one example becomes a failed row with the reason, and the harvest goes on.

The API key comes from ``options["api_key"]``, else :func:`kdstudio.core.secrets.get_api_key`;
it is never stored in the project nor logged. ``ANTHROPIC_BASE_URL`` points the client at a proxy
or gateway (``options["base_url"]`` wins).

The package, along its seams (each module imports only those listed before it):

- :mod:`.client`: the Anthropic clients, the meaning of API errors, the model list and the
  connection test the settings wizard uses (and their jobs, :func:`list_claude_models` and
  :func:`check_claude`);
- :mod:`.prompt`: what the model is told and how its reply becomes an answer, one class per task;
- :mod:`.messages`: one teacher's options and single requests (parameters, price, parse, cost);
- :mod:`.realtime` and :mod:`.batch`: the two lanes;
- :mod:`.teacher`: :class:`ClaudeTeacher`, both lanes behind the Teacher protocol;
- :mod:`.terms`: the one line on Anthropic's terms for training on Claude's outputs.
"""

from kdstudio.core.teachers.claude.batch import BATCH_MAX_BYTES, BATCH_MAX_REQUESTS
from kdstudio.core.teachers.claude.client import (
    SPEND_LIMIT_CODES,
    ClaudeCheck,
    ClaudeModel,
    ClaudeModels,
    check_claude,
    list_claude_models,
    list_models,
    test_connection,
)
from kdstudio.core.teachers.claude.messages import AnswerShape, answer_shape
from kdstudio.core.teachers.claude.prompt import MIN_PROB, PROMPT_VERSION, TOOL_NAME
from kdstudio.core.teachers.claude.realtime import CANCEL_GRACE_S, TRANSIENT_STREAK_LIMIT
from kdstudio.core.teachers.claude.teacher import ClaudeTeacher
from kdstudio.core.teachers.claude.terms import CLAUDE_TERMS_LINE, teaches_with_claude

__all__ = [
    "BATCH_MAX_BYTES",
    "BATCH_MAX_REQUESTS",
    "CANCEL_GRACE_S",
    "CLAUDE_TERMS_LINE",
    "MIN_PROB",
    "PROMPT_VERSION",
    "SPEND_LIMIT_CODES",
    "TOOL_NAME",
    "TRANSIENT_STREAK_LIMIT",
    "AnswerShape",
    "ClaudeCheck",
    "ClaudeModel",
    "ClaudeModels",
    "ClaudeTeacher",
    "answer_shape",
    "check_claude",
    "list_claude_models",
    "list_models",
    "teaches_with_claude",
    "test_connection",
]
