"""Ask the study: a radiologist's questions to the model about one drafted study, and its answers.

In flow order: :mod:`~radassist.conversation.ask` checks and stores a question (web, write side);
the drafting worker answers it before any routine draft (:mod:`~radassist.conversation.serve`),
gathering what the model is given (:mod:`~radassist.conversation.gather`: the draft's kept
pictures, its prompt and text, the conversation so far), fitted into the model's context budget
(:mod:`~radassist.conversation.context`), asked through the backend's streaming interface
(:mod:`~radassist.conversation.chat`), with any boxes placed on the kept pictures
(:mod:`~radassist.conversation.boxes`).  Each state change of a turn is a compare-and-set
(:mod:`~radassist.conversation.turns`).  The study page and the JSON API read the turns through
:mod:`radassist.read.conversation`.  Importing this package loads no model code.
"""
