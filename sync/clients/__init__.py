"""sync/clients"""
