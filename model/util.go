package model

