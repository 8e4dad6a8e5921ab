"""Course assignments: one teacher's notebook, a released student version, papermill grading.

The workflow (commands in ``book/assignments/for_teachers.md`` and the README):

1. **Write** the teacher's notebook with nbgrader's markers (:mod:`.markers`): solutions
   between ``### BEGIN SOLUTION`` / ``### END SOLUTION``, hidden tests between
   ``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS`` that :func:`record` values.
2. **Release** (:mod:`.release`): ``python -m metaecom.assignments release <teacher.ipynb>
   <out_dir>`` writes the student version (solutions stubbed, hidden tests removed).
3. **Grade** (:mod:`.grade`): ``python -m metaecom.assignments grade <teacher.ipynb>
   <submissions_dir> <out_dir>`` runs every submission with papermill, several at once,
   each in a sandboxed kernel with time and memory limits, and writes a gradebook, one
   feedback page per student and a figure (:mod:`.feedback`).

One module per idea: :mod:`.markers` (conventions), :mod:`.release`, :mod:`.assemble`
(the notebook that is executed), :mod:`.harness` (what runs in the kernel),
:mod:`.sandbox` and :mod:`.landlock` (what a kernel may touch), :mod:`.execute`
(papermill in a process of its own), :mod:`.score` (points and status), :mod:`.feedback`,
:mod:`.grade` (the batch).

**Why not nbgrader or otter-grader itself.** nbgrader keeps its gradebook in a SQL
database and a course-directory layout, executes with its own preprocessors (no papermill
parameters, no memory limit) and runs hidden tests in the student's kernel, where a
student's code can reach them. otter-grader's isolation is Docker, which the machines this
book targets (a laptop, a 2-core CI runner) may not have, and it adds a large dependency
tree. Their *conventions* are good and are kept: nbgrader's cell metadata
(``grade_id``, ``points``, ``solution``, ``grade``, ``locked``), its markers and its stub.
The parts a library does well come from libraries: nbformat (reading, validating,
writing), papermill (parameters, execution), concurrent.futures, tqdm, matplotlib.

**Why grading cannot be faked.** Expected values are never written anywhere: the hidden
tests run twice, after the teacher's solution and after the student's answers, and the
grader compares the two in its own process. The student's kernel cannot read the
teacher's notebook or other submissions (Landlock), results are taken only from the
grader's own last cell and only with that run's random token, and cells are matched by
``grade_id``. Limits: a student who sabotages the grader's cell only loses points, and a
student who can already read the teacher's notebook elsewhere (the sources of this book
are public) could copy its solutions; keep your course's sources private.
"""

from metaecom.assignments.harness import autograd_used, record

__all__ = ["record", "autograd_used"]
