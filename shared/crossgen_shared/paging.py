"""A page of a list an HTTP API could not answer whole: the delivery log, a program's pairings.

Such a list grows with the company (20,000 pairings in a program of 40,000), and a service answers
it on the event loop that also moves its events."""

from pydantic import BaseModel, Field


class Page(BaseModel):
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0)
