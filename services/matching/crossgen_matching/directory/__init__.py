"""The employee directory: who works here, fed by the company's HRIS, and what that means for
the programs (a person who leaves frees their partner; no one is paired with their own manager).

Three ways in, one write path (``employees.record``): the SCIM 2.0 endpoint (``scim``), the HRIS
Kafka topic with a mapper per vendor format (``intake``, ``vendors``), and a CSV file
(``csv_import``).
"""
