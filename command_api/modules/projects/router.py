from fastapi import APIRouter

from command_api.transaction import CommandRoute

router = APIRouter(route_class=CommandRoute)
