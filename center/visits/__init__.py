"""Prison family visits by video (远程视频会见): records, booking rules, approval, join codes.

``center`` knows no HTTP and no WebRTC: the service here keeps the record and its rules;
``web/api_visits.py`` is the HTTP face. Flow, rules and settings: docs/visits.md.
"""
